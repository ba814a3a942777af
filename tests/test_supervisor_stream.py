"""The watcher of a multi-process run shows the child's stderr as it comes but none of jax's
fatal block, even when the child's own last words arrive in pieces after the block began."""

from jaxvision.supervisor import _Stream

FATAL = b"F1205 22:52:07.3 agent.cc:1] Terminating process because the JAX distributed service detected fatal errors.\n"


def test_lines_and_a_progress_bar_are_shown_as_they_come():
    stream = _Stream()
    assert stream.feed(b"step 1\nstep") == b"step 1\nstep"  # a partial line (a bar) at once
    assert stream.feed(b" 2\r") == b" 2\r"
    assert stream.feed(b"") == b""
    assert stream.held == [] and stream.line_break == "\n"


def test_nothing_from_the_fatal_block_on_is_shown_whole_or_in_parts():
    stream = _Stream()
    assert stream.feed(b"E1205 polled an error\n") == b"E1205 polled an error\n"
    assert stream.feed(FATAL[:1]) == b""  # an F could begin the block: wait for the line
    assert stream.feed(FATAL[1:] + b"error: Process 1 of 2: a collective failed\n") == b""
    assert stream.feed(b"(set JAXVISION_TRACEBACK=1 to see where it came from)") == b""
    assert stream.feed(b"\n") == b""
    assert stream.feed(b"") == b""
    assert stream.held[0] == FATAL and len(stream.held) == 3
    assert stream.line_break == ""  # the watcher's sentence starts its own line


def test_the_sentence_after_a_partial_line_starts_a_new_line():
    stream = _Stream()
    stream.feed(b"epoch 3:  40%|####")
    stream.feed(FATAL)
    assert stream.held == [FATAL] and stream.line_break == "\n"


def test_the_childs_own_sentence_before_the_block_is_remembered():
    stream = _Stream()
    stream.feed(b"error: Process 1 of 2: a collective failed; start every process again\n")
    stream.feed(FATAL)
    assert stream.said and stream.held == [FATAL]  # the watcher adds no second sentence
