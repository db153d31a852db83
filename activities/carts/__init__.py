"""Activities of the cart workflow that read and update the cart snapshot."""
