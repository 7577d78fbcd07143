"""What the PyTorch side-by-side benchmarks share: a step's rate, as `wsi bench` reports its own."""
import statistics
import time


def timed(step, batch, steps):
    """Median images per second of `steps` runs of `step` after one warm-up run."""
    step()
    rates = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        rates.append(batch / (time.perf_counter() - start))
    return statistics.median(rates)
