"""What a quorum decides, as plain tuples, so that a decision crosses the grading sandbox as
data. The lab's setup cell imports these five; the grading sandbox runs this file's text as the
lab's prelude (standard library only), so the student's code finds them in both places."""


def Wait():
    """Nothing to do yet."""
    return ("wait",)


def Answer(done=False):
    """Answer the client now; done: nobody else is awaited either."""
    return ("answer", bool(done))


def Retry(stand_ins):
    """Send the request to these stand-ins: {stand-in: the silent node it stands in for}."""
    return ("retry", dict(stand_ins))


def Fail(may_have_applied):
    """No quorum and nobody left to try: tell the client, saying whether the write may have
    been stored anyway."""
    return ("fail", bool(may_have_applied))


def Finish():
    """Answered before, and now nobody is awaited any more."""
    return ("finish",)
