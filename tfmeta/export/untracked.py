"""Keeping Keras models out of an export's object graph."""


class Untracked:
    """Holds objects where tf.Module does not track them, so tf.saved_model.save keeps
    only what a server's signatures read (the variables they capture, tracked apart),
    not the Keras models with their training-time functions."""

    def __init__(self, *objects):
        self.objects = objects
