from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=50)
    value = models.IntegerField(default=0)

    class Meta:
        app_label = "app"
