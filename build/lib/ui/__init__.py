"""The Streamlit front end: `streamlit run ui/app.py`."""
