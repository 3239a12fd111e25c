"""The shared listener lists: the workspace queues an event a listener causes until every
listener has heard the current one; the explore session calls its listeners at once."""

from __future__ import annotations

from lstmviz.workspace import Change, Workspace
from lstmviz.workspace.events import Emitter, Event, Subscribers
from lstmviz.workspace.explore_queries import Topic
from lstmviz.workspace.explore_session import ExploreSession


def test_an_event_a_listener_causes_waits_until_all_heard_the_current_one():
    emitter, heard = Emitter(), []

    def first(event: Event) -> None:
        heard.append(("first", event.change))
        if event.change is Change.MODEL:
            emitter.emit(Event(Change.TRACE))

    emitter.subscribe((Change.MODEL, Change.TRACE), first)
    emitter.subscribe((Change.MODEL, Change.TRACE), lambda e: heard.append(("second", e.change)))
    emitter.emit(Event(Change.MODEL))
    assert heard == [
        ("first", Change.MODEL),
        ("second", Change.MODEL),
        ("first", Change.TRACE),
        ("second", Change.TRACE),
    ]


def test_a_listener_leaving_while_called_does_not_skip_the_next_one():
    subscribers: Subscribers[Change, str] = Subscribers(Change)
    heard: list[str] = []
    leave = subscribers.subscribe(Change.STEP, lambda a: (heard.append("a"), leave()))
    subscribers.subscribe((Change.STEP,), lambda a: heard.append("b"))
    for listener in subscribers.of(Change.STEP):
        listener("x")
    assert heard == ["a", "b"]
    assert len(subscribers.of(Change.STEP)) == 1
    leave()  # twice is harmless
    assert subscribers.of(Change.MODEL) == ()


def test_the_explore_session_calls_its_listeners_at_once():
    session, heard = ExploreSession(Workspace()), []

    def on_corpus(topic: Topic) -> None:
        heard.append(topic)
        session.fail("no")  # heard by everyone before ANNOTATIONS, unlike a workspace event

    session.subscribe(Topic.CORPUS, on_corpus)
    unsubscribe = session.subscribe((Topic.ANNOTATIONS, Topic.ERROR), heard.append)
    session.set_corpus(None)
    assert heard == [Topic.CORPUS, Topic.ERROR, Topic.ANNOTATIONS]
    unsubscribe()
    session.set_corpus(None)
    assert heard[3:] == [Topic.CORPUS]
