"""Runs the private training in fixed point, then proves every step; keeps private/ apart from public/."""
