"""The read model of a recommendation request and its loading through the store port."""
