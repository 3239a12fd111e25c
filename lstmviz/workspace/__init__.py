"""Qt-free state of one window: model, sequence, initial states, trace, debugger, selection,
breakpoints and view options, with typed change events that views subscribe to.

It opens files, so it sits above ``lstmviz.io`` and below ``lstmviz.gui`` (never in core).
"""

from lstmviz.workspace.events import Change, Event
from lstmviz.workspace.jobs import Cancelled, InlineRunner, Job, Runner
from lstmviz.workspace.states import StateMap, has_stored_states, initial_states
from lstmviz.workspace.workspace import Options, Workspace

__all__ = [
    "Cancelled",
    "Change",
    "Event",
    "InlineRunner",
    "Job",
    "Options",
    "Runner",
    "StateMap",
    "Workspace",
    "has_stored_states",
    "initial_states",
]
