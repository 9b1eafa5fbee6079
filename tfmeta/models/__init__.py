"""Models: the base recommenders that update strategies and meta-learners train."""
