"""Forms of the inventory pages."""

from __future__ import annotations

from django import forms

from inventory.models import Manager
from plugin import engine as ovirt
from plugin.errors import EngineError


class ManagerForm(forms.ModelForm):
    """Add or edit a manager. The stored password is never rendered; empty keeps it.

    The password is a plain form field, not a model field of the form, so an
    edit page never decrypts the stored one (and still opens when it can't be
    decrypted any more).
    """

    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        required=False, strip=False,
        help_text="Leave empty to keep the stored password.",
    )

    class Meta:
        model = Manager
        fields = ["name", "url", "username", "ca_certificate"]
        widgets = {"ca_certificate": forms.Textarea(attrs={"rows": 6, "spellcheck": "false"})}

    field_order = ["name", "url", "username", "password", "ca_certificate"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance.pk:
            self.fields["password"].required = True
            self.fields["password"].help_text = ""

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip().rstrip("/")
        try:
            ovirt.ManagerCredentials(url=url, username="", password="").validate()
        except EngineError as exc:
            raise forms.ValidationError(str(exc)) from None
        return url

    def clean_ca_certificate(self) -> str:
        pem = self.cleaned_data["ca_certificate"].strip()
        if pem and "-----BEGIN CERTIFICATE-----" not in pem:
            raise forms.ValidationError(
                "Paste the CA certificate in PEM form (-----BEGIN CERTIFICATE----- ...).")
        return pem + "\n" if pem else ""

    def save(self, commit: bool = True) -> Manager:
        if self.cleaned_data.get("password"):
            self.instance.password = self.cleaned_data["password"]
        return super().save(commit)

    def credentials(self) -> ovirt.ManagerCredentials:
        """The credentials as entered (with the stored password when left empty).

        AuthenticationFailed when the stored password is needed and can't be decrypted.
        """
        data = self.cleaned_data
        password = data["password"] or self.instance.stored_password()
        return ovirt.ManagerCredentials(url=data["url"], username=data["username"],
                                        password=password, ca_pem=data.get("ca_certificate", ""))


class ConnectionTestForm(ManagerForm):
    """The manager form as "Test connection" uses it: a taken name doesn't matter."""

    def validate_unique(self) -> None:
        pass


def engine_error_kind(exc: EngineError) -> str:
    """A short word for the kind of failure, for the page's styling and tests."""
    return type(exc).__name__
