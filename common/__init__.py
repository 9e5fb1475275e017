"""The ground floor every package may import: the user-error family, atomic files, process lifetime, signals,
the console, the timing presets and the toolchain versions. It imports nothing of this project."""
