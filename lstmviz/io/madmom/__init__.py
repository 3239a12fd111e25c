"""madmom's own pickled networks (``madmom.ml.nn``): beat, downbeat, onset and note trackers."""
