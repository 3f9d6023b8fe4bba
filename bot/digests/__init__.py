"""Digests, from choosing papers to the last posted message.

- `render`: every way a paper or digest is shown, as plain data within Discord's limits.
- `schedule`: when a channel's digest is due, planning it, previewing it.
- `delivery`: posting recorded digests exactly once, resuming after crashes.
- `terminal`, `export`: the same papers for a terminal and as the curated Markdown list.
"""
