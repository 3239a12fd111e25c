"""ONNX reader: a self-contained protobuf decoder, constant folding and LSTM nodes."""
