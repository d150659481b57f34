"""Project writer: templates rendered to text, then put on disk without losing a user's file."""
