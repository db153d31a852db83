"""The cart-recovery workflow and its data types."""
