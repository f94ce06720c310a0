//! Unit tests of the request encoding and answer shaping of the REST client.
