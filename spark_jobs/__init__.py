"""Dredge: attribute both ends of every VPC flow to the application that owned each IP at the time."""
