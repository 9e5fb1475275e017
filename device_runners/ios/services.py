"""The pymobiledevice3 calls the iOS transport makes, in one place, so a test can stand in for the phone.

HARNESS_IOS_SERVICES names a module that provides the same names with the same (async) API; tests point it at
tests/support/ios_standin.py. pymobiledevice3 is imported here, lazily: `import harness.cli` must stay light.
"""

from __future__ import annotations

import importlib
import os
from types import SimpleNamespace

NAMES = ("list_devices", "create_using_usbmux", "get_tunneld_device_by_udid", "InstallationProxyService",
         "HouseArrestService", "MobileImageMounterService", "DiagnosticsService", "DvtProvider", "ProcessControl",
         "DeviceInfo", "Sysmontap", "exceptions")


def load() -> SimpleNamespace:
    """The services: the stand-in module named by HARNESS_IOS_SERVICES, else pymobiledevice3's own."""
    name = os.environ.get("HARNESS_IOS_SERVICES")
    if name:
        mod = importlib.import_module(name)
        return SimpleNamespace(**{n: getattr(mod, n) for n in NAMES})
    from pymobiledevice3 import exceptions
    from pymobiledevice3.lockdown import create_using_usbmux
    from pymobiledevice3.services.diagnostics import DiagnosticsService
    from pymobiledevice3.services.dvt.instruments.device_info import DeviceInfo
    from pymobiledevice3.services.dvt.instruments.dvt_provider import DvtProvider
    from pymobiledevice3.services.dvt.instruments.process_control import ProcessControl
    from pymobiledevice3.services.dvt.instruments.sysmontap import Sysmontap
    from pymobiledevice3.services.house_arrest import HouseArrestService
    from pymobiledevice3.services.installation_proxy import InstallationProxyService
    from pymobiledevice3.services.mobile_image_mounter import MobileImageMounterService
    from pymobiledevice3.tunneld.api import get_tunneld_device_by_udid
    from pymobiledevice3.usbmux import list_devices

    return SimpleNamespace(list_devices=list_devices, create_using_usbmux=create_using_usbmux,
                           get_tunneld_device_by_udid=get_tunneld_device_by_udid,
                           InstallationProxyService=InstallationProxyService, HouseArrestService=HouseArrestService,
                           MobileImageMounterService=MobileImageMounterService, DiagnosticsService=DiagnosticsService,
                           DvtProvider=DvtProvider, ProcessControl=ProcessControl, DeviceInfo=DeviceInfo,
                           Sysmontap=Sysmontap, exceptions=exceptions)
