"""Routes for carts: storefront events, cadences, discount pools, the cart report."""
