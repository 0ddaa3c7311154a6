"""hil: hardware-in-the-loop checks of Xen's FF-A mediator against the firmware a lab ships."""

__version__ = "0.1.0"
