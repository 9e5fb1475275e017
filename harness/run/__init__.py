"""Program -> record: put a program on a device, time it, score its outputs, summarise the samples."""
