"""Make the media storage ready on a first start: create the S3 bucket if it is missing, refuse a public one."""
from __future__ import annotations

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the media bucket if it does not exist (S3 storage); check that it grants nothing to anonymous users."

    def handle(self, *args, **options) -> None:
        bucket = getattr(default_storage, "bucket_name", None)
        if not bucket:
            self.stdout.write(f"Media on the local disk at {default_storage.location}; nothing to prepare.")
            return
        from botocore.exceptions import ClientError

        client = default_storage.connection.meta.client
        try:
            client.head_bucket(Bucket=bucket)
            created = False
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket", "NotFound"}:
                raise CommandError(f"The media bucket {bucket!r} cannot be reached: {error}") from None
            client.create_bucket(Bucket=bucket)
            created = True
        public = self._public_grants(client, bucket)
        if public:
            raise CommandError(
                f"The media bucket {bucket!r} grants {', '.join(public)} to everyone; radiographs must never be public. "
                "Remove the public grant or policy and start again."
            )
        self.stdout.write(f"Media bucket {bucket!r} {'created' if created else 'exists'}; private.")

    @staticmethod
    def _public_grants(client, bucket: str) -> list[str]:
        from botocore.exceptions import ClientError

        grants = []
        try:
            acl = client.get_bucket_acl(Bucket=bucket)
        except ClientError:
            acl = {"Grants": []}  # a store without ACLs (ownership enforced) grants through policies only
        for grant in acl.get("Grants", []):
            uri = grant.get("Grantee", {}).get("URI", "")
            if uri.endswith("/global/AllUsers") or uri.endswith("/global/AuthenticatedUsers"):
                grants.append(f"{grant.get('Permission', '?')} (ACL)")
        try:
            status = client.get_bucket_policy_status(Bucket=bucket)
            if status.get("PolicyStatus", {}).get("IsPublic"):
                grants.append("access (bucket policy)")
        except ClientError:
            pass  # no policy, or a store that does not evaluate policies
        return grants
