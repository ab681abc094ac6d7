"""What Lab 5 hands the student: how far each member status is along a node's life. The setup
cell imports it; the grading sandbox runs this file's text as the lab's prelude (standard
library only), so the student's code finds it in both places."""

#: A member's status, in the order a node goes through them: a tie in (generation,
#: heartbeat) goes to the further one, so that a departure is never forgotten.
STATUS_RANK = {"up": 0, "leaving": 1, "left": 2}
