"""Deterministic synthetic PAMAP2: raw `.dat` files a PAMAP2 reader cannot tell apart by format.

No download is possible on a fresh machine, so the default data set is generated. It has to be
realistic enough for the experiments to mean something: every activity has a physical motion
model (posture sets the gravity direction seen by each sensor, gait-like periodic motion with a
subject-specific cadence, task motion of the hand, vibration), heart rate follows intensity with
a first-order lag, and subjects differ in sensor mounting, vigour, cadence and resting heart rate.
Several activity pairs differ mainly in one modality (sitting / watching TV / computer work in
hand motion, standing / ironing in the hand, ascending / descending stairs in the ankle, walking /
Nordic walking in the hand, car driving / sitting in whole-body vibration; heart rate adds the
intensity that separates vacuuming from ironing or Nordic from plain walking when a limb sensor is
missing), so single-modality models lose to fusion without any class being trivial.

It must also be about as hard as real recordings, or conclusions drawn on it would not hold on
people. The body carries the limbs (the wrist moves with the trunk and swings about the shoulder,
so a running arm feels the swing's tangential and centripetal acceleration), sensors sit
differently on everyone (tilted, sometimes turned over), and each subject does each activity in
their own way: vigour per limb, cadence, how a limb is held, whether the arm swings or stays
still, the shape of their gait, a double bounce or a boxer's skip over the rope. Amplitudes,
sensor noise and heart-rate levels were calibrated against real PAMAP2 recordings with
`benchmarks/synthetic_realism.py`, which prints how close the default set comes.

Every random draw comes from a generator seeded with `(seed, subject, ...)`, so a subject's files
do not depend on which other subjects are generated (except in the rare case where an activity
would fall below three subjects and is given back to one that had dropped it).

`profiles` holds what each activity looks like, `cohort` who does what and for how long,
`motion` the physics, and `generate.generate` writes the files.
"""
