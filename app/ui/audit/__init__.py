"""The Audit view: workflow report, pattern 'about' panels and the map of prompts."""
