"""The kernel side: reading /proc/allocinfo (text or ioctl), parsing it, and taking a snapshot."""
