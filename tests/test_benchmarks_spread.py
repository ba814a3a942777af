"""benchmarks/spread.py's reading of /proc and its summary row. No timing."""

from benchmarks import spread

# A /proc/PID/stat line whose command name holds a space and a ')', as a thread name may.
STAT = "4242 (py thon) x) R 1 2 3 4 5 6 1500 7 8 9 250 75 11 12 20 0 3 0 99 1000 200"


def test_process_counters_read_the_fields_after_the_last_parenthesis():
    got = spread.process_counters(STAT)
    assert got == {"minflt": 1500.0, "user_s": 250 / spread.CLK_TCK, "sys_s": 75 / spread.CLK_TCK}


def test_steal_is_the_eighth_number_of_the_cpu_line():
    proc_stat = "cpu  100 1 50 900 3 0 2 40 0 0\ncpu0 50 0 25 450 1 0 1 20 0 0\n"
    assert spread.steal_seconds(proc_stat) == 40 / spread.CLK_TCK


def test_deltas_and_the_summary_name_the_slowest_and_fastest_steps():
    samples = [
        {"wall_s": 0.0, "steal_s": 0.0, "sys_s": 0.0, "minflt": 0.0, "user_s": 0.0},
        {"wall_s": 2.0, "steal_s": 0.5, "sys_s": 0.1, "minflt": 10.0, "user_s": 3.0},
        {"wall_s": 3.0, "steal_s": 0.5, "sys_s": 0.2, "minflt": 30.0, "user_s": 5.0},
    ]
    steps = spread.deltas(samples)
    assert steps == [
        {"wall_s": 2.0, "steal_s": 0.5, "sys_s": 0.1, "minflt": 10.0, "user_s": 3.0},
        {"wall_s": 1.0, "steal_s": 0.0, "sys_s": 0.1, "minflt": 20.0, "user_s": 2.0},
    ]
    row = spread.summary("jaxvision", 1, 16, steps)
    assert row == (
        "| jaxvision | 1 | 12.00 | 8.00-16.00 | 0.17 "
        "| 2.00 s: steal 0.50, sys 0.10, faults 10 | 1.00 s: steal 0.00, sys 0.10, faults 20 |"
    )
