"""iPhones and the iOS Simulator: a signed benchmark app (app/) around the runner core, and the host-side transports
that drive it (device.py over pymobiledevice3, simulator.py over `xcrun simctl`). An iPhone has no shell: the
transports speak the few commands measure.py sends (app.py) and turn the runner invocation into an app launch."""
