"""The 68-point iBUG (300-W) landmark scheme every backend returns: index groups and the lines drawn between them.

Indices are 0-based. "Right" and "left" are the subject's: the subject's right eye (36-41) appears on the image's
left in an unmirrored frontal photo.
"""

from __future__ import annotations

JAW = range(0, 17)
RIGHT_BROW = range(17, 22)
LEFT_BROW = range(22, 27)
NOSE_BRIDGE = range(27, 31)
NOSE_LOWER = range(31, 36)
RIGHT_EYE = range(36, 42)
LEFT_EYE = range(42, 48)
OUTER_LIPS = range(48, 60)
INNER_LIPS = range(60, 68)

RIGHT_EYE_OUTER, RIGHT_EYE_INNER = 36, 39
LEFT_EYE_INNER, LEFT_EYE_OUTER = 42, 45
NOSE_TIP = 30
CHIN = 8
MOUTH_RIGHT, MOUTH_LEFT = 48, 54
INNER_LIP_TOP, INNER_LIP_BOTTOM = 62, 66

# (group, closed): the polylines a drawing of the landmarks connects.
POLYLINES: tuple[tuple[range, bool], ...] = (
    (JAW, False),
    (RIGHT_BROW, False),
    (LEFT_BROW, False),
    (NOSE_BRIDGE, False),
    (NOSE_LOWER, False),
    (RIGHT_EYE, True),
    (LEFT_EYE, True),
    (OUTER_LIPS, True),
    (INNER_LIPS, True),
)
