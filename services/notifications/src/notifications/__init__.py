"""The notifications worker of the obslab shop: order events in, emails (simulated) out."""
