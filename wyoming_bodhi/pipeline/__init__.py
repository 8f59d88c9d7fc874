"""Engine-agnostic request handling: audio conversion, framing and pacing, one utterance's
engine session, transcript assembly, hotwords, and what every connection shares."""
