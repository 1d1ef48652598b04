"""The browser demo that `python app.py` serves: uploads checked, photos and webcam frames segmented, the page."""
