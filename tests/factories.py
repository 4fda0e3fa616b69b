import factory

from accounts.models import Member


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    external_id = factory.Sequence(lambda n: f"member-{n}")
    display_name = factory.Faker("name")
    email = factory.Faker("email")
