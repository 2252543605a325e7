//! Carrier label files and issued-data files (shipping-day.md §1): being written by a helper.
