"""Channel apps (banks, payment apps, city apps) that embed the e-card for linked holders."""
