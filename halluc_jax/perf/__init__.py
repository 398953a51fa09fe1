"""Performance measurement shared by the trainer and the benchmarks: model FLOPs, MFU."""
