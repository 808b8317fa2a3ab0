"""The bottom layer: records, the store, ids, clock, config, errors, limits; imports nothing above it."""
