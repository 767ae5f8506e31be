"""The shared predictor contract: scale learned from training data, not assumed."""

import numpy as np
import pandas as pd

from recsys.models.means import UserMeanPredictor


def test_predictions_follow_the_training_rating_scale():
    # ml-latest-small style half-star ratings: a user whose mean is 0.75 must not be clipped to 1.
    train = pd.DataFrame({"user_id": [1, 1, 2, 2], "item_id": [10, 11, 10, 11], "rating": [0.5, 1.0, 5.0, 4.5]})
    model = UserMeanPredictor().fit(train)
    assert model.rating_scale_ == (0.5, 5.0)
    np.testing.assert_allclose(model.predict([1, 2], [12, 12]), [0.75, 4.75])
