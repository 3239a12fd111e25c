"""Shared low-level decoders: protobuf wire format, SSTable, CRC32C and the safe unpickler."""
