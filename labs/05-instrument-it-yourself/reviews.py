"""reviews: what customers thought of each product, with no instrumentation at all.

Lab 5 (README.md next to this file) has you instrument it: ``obslab lab start 5`` puts
a copy in ``.obslab/run/labs/05/reviews.py`` and runs it with uvicorn on port 8107,
reloading it each time you save the copy. Edit the copy, save, call it again.
"""

from fastapi import FastAPI, HTTPException

#: Each product's ratings, one to five stars.
RATINGS = {1: [5, 4, 5], 2: [3, 4], 3: [2, 5, 4, 4]}

app = FastAPI(title="reviews")


def summarise(ratings: list[int]) -> dict[str, float]:
    """How many reviews, and their average rating."""
    return {"reviews": len(ratings), "average": round(sum(ratings) / len(ratings), 2)}


@app.get("/reviews/{product_id}")
def reviews(product_id: int) -> dict[str, int | float]:
    if product_id not in RATINGS:
        raise HTTPException(404, "no reviews for this product")
    return {"product_id": product_id, **summarise(RATINGS[product_id])}
