"""Cart recovery: storefront events in, cadences, the cart↔workflow sync, attribution and the
cart-recovery report."""
