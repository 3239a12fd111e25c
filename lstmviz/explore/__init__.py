"""Explore hidden-state patterns across a corpus (LSTMVis' select → match workflow), Qt-free.

A notebook runs the whole workflow without a window; the GUI is a view on the same objects::

    import lstmviz
    from lstmviz import explore

    model = lstmviz.load_model("brackets_lstm.pt")
    vocab = explore.Vocabulary.from_file("brackets_vocab.txt")
    corpus = explore.Corpus.from_text("brackets_corpus.txt", vocab)
    states = explore.run_corpus(model, corpus, layer=0)          # h of layer 0, (N, units)
    units = explore.select(states, 10, 16, threshold=0.3)        # on throughout [10, 16)
    matches = explore.match(states, units, top=20)               # ranked Match(start, stop, ...)
    notes = explore.Annotations.from_file("brackets_depth.txt", corpus)
    notes.hit_rates(matches)                                     # label → share of matched tokens

States already computed need no second run: ``CorpusStates.from_trace(lstmviz.run(model, x),
layer)`` (a run you made, or the debugger's) or ``states_from_arrays(corpus, values)`` (states
a framework recorded). ``run_corpus(..., engine="numpy")`` avoids the compiled kernels' first
load in a GUI's worker; ``DEFAULT_THRESHOLD`` (0.3, LSTMVis') is ``select``'s and the GUI's.
"""

from lstmviz.explore.annotations import Annotations
from lstmviz.explore.corpus import Corpus, Document
from lstmviz.explore.index import OnIndex
from lstmviz.explore.match import Match, match
from lstmviz.explore.select import DEFAULT_THRESHOLD, UnitSet, select
from lstmviz.explore.states import Cancelled, CorpusStates, run_corpus, states_from_arrays
from lstmviz.explore.vocabulary import Vocabulary

__all__ = [
    "DEFAULT_THRESHOLD",
    "Annotations",
    "Cancelled",
    "Corpus",
    "CorpusStates",
    "Document",
    "Match",
    "OnIndex",
    "UnitSet",
    "Vocabulary",
    "match",
    "run_corpus",
    "select",
    "states_from_arrays",
]
