"""Model providers behind one small Protocol; the pipeline never knows which one answers."""

from gitteam.models.base import CallContext, Message, Model, Reply, ToolCall, ToolSpec, Usage

__all__ = ["CallContext", "Message", "Model", "Reply", "ToolCall", "ToolSpec", "Usage"]
