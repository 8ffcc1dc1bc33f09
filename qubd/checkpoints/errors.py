"""The one error type of checkpoint loading: its message is a complete sentence naming the file."""


class CheckpointError(Exception):
    """A path that is missing, not a checkpoint, corrupt, or refused by ``torch.load(weights_only=True)``."""
