"""Input side: the embedded dataset generator, the video reader, sampling and the grain pipeline."""
