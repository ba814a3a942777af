"""benchmarks/throughput.measure's conversation with its workers, with stand-in workers. No timing."""

from benchmarks import throughput


class FakeWorker:
    sent: list = []

    def __init__(self, case, threads):
        self.case = case

    def ask(self, msg=None):
        FakeWorker.sent.append((self.case.label, msg))
        if msg is None:
            return {"first_step_s": 1.0}
        if "memory" in msg:
            return {"peak_mb": 1.0, "memory_kind": "host RSS"}
        return {"seconds": 2.0 * msg["steps"], "cpu_seconds": 4.0 * msg["steps"]}

    def close(self):
        pass


def test_every_round_runs_an_untimed_step_before_the_timed_ones_in_case_order(monkeypatch):
    FakeWorker.sent = []
    monkeypatch.setattr(throughput, "Worker", FakeWorker)
    cases = [throughput.Case("a", "jaxvision", "segmenter"), throughput.Case("b", "torch", "segmenter")]
    results = throughput.measure(cases, repeats=2, steps=3, threads=1, say=lambda s: None)
    timed = [(label, msg) for label, msg in FakeWorker.sent if msg and "steps" in msg]
    assert timed == [(label, {"steps": 3, "warm": 1}) for label in "abab"]
    batch = throughput.SPECS["segmenter"].batch
    assert results[0].images_per_s == [batch / 2.0] * 2  # the timed steps only: 3 steps in 6 s
    assert results[1].images_per_cpu_s == [batch / 4.0] * 2
