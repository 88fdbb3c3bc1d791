"""factory-boy factories for the core records."""

import factory

from mdm.models import SourceSystem


class SourceSystemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SourceSystem
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"sys{n}")
    name = factory.LazyAttribute(lambda o: o.code.upper())
    trust_rank = 100
