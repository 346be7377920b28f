"""Forms of the repository pages. Secrets (token, passphrase) are never rendered back."""

from __future__ import annotations

import ssl

from django import forms

from repositories.models import GatewayServer, Repository
from vbrsite.secrets import SecretError

GIB = 1024**3


class RepositoryForm(forms.ModelForm):
    """Add or edit a repository. Encryption is chosen once, when it is added."""

    token = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        required=False, strip=True, label="Data mover token",
        help_text="Empty: keep the current token (or generate one for a new repository). "
                  "Give the token a gateway's data mover was started with.")
    datamover_url = forms.URLField(
        required=False, assume_scheme="http", label="Data mover URL",
        help_text="Empty: http://127.0.0.1:8100, or http://GATEWAY:8100 with a gateway.")
    capacity_gib = forms.FloatField(required=False, min_value=0, label="Capacity (GiB)",
                                    help_text="Empty: the size of the filesystem.")
    encrypt = forms.BooleanField(required=False, label="Encrypt restore points (AES-256-GCM)")
    passphrase = forms.CharField(widget=forms.PasswordInput(render_value=False), required=False,
                                 strip=False, help_text="At least 12 characters. Without it, "
                                 "no one can restore from this repository: keep it safe.")
    passphrase_again = forms.CharField(widget=forms.PasswordInput(render_value=False),
                                       required=False, strip=False)

    class Meta:
        model = Repository
        fields = ["name", "description", "kind", "path", "gateway", "datamover_url",
                  "ca_certificate", "immutable_days"]
        widgets = {"ca_certificate": forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
                   "description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial.pop("token", None)
        if self.instance.capacity:
            self.initial["capacity_gib"] = round(self.instance.capacity / GIB, 1)
        if self.instance.pk:
            for name in ("encrypt", "passphrase", "passphrase_again"):
                del self.fields[name]

    def clean_ca_certificate(self) -> str:
        pem = self.cleaned_data["ca_certificate"].strip()
        if not pem:
            return ""
        try:
            ssl.create_default_context(cadata=pem)
        except (ssl.SSLError, ValueError) as exc:
            raise forms.ValidationError(
                f"This isn't a usable CA certificate ({exc}): paste its PEM form "
                "(-----BEGIN CERTIFICATE----- ...).") from None
        return pem + "\n"

    def clean_path(self) -> str:
        path = self.cleaned_data["path"].strip()
        if not path.startswith("/"):
            raise forms.ValidationError("Give the full folder path, starting with /.")
        return path

    def clean(self):
        data = super().clean()
        if data.get("encrypt"):
            passphrase = data.get("passphrase") or ""
            if len(passphrase) < 12:
                self.add_error("passphrase", "Use a passphrase of at least 12 characters.")
            elif passphrase != data.get("passphrase_again"):
                self.add_error("passphrase_again", "The two passphrases differ.")
        if not data.get("datamover_url"):
            gateway = data.get("gateway")
            data["datamover_url"] = (gateway.default_datamover_url() if gateway
                                     else "http://127.0.0.1:8100")
        capacity = data.get("capacity_gib")
        data["capacity"] = int(capacity * GIB) if capacity else None
        return data

    def save(self, commit: bool = True) -> Repository:
        repository = super().save(commit=False)
        repository.capacity = self.cleaned_data["capacity"]
        if self.cleaned_data.get("token"):
            repository.token = self.cleaned_data["token"]
        if commit:
            repository.save()
        return repository


class ConnectionTestForm(forms.Form):
    """The fields "Test" needs, taken from the repository form as typed."""

    datamover_url = forms.URLField(required=False, assume_scheme="http")
    gateway = forms.ModelChoiceField(GatewayServer.objects.all(), required=False)
    token = forms.CharField(required=False)
    ca_certificate = forms.CharField(required=False)

    def __init__(self, *args, repository: Repository | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.repository = repository

    def connection(self) -> dict:
        data = self.cleaned_data
        url = data["datamover_url"] or (data["gateway"].default_datamover_url()
                                        if data["gateway"] else "http://127.0.0.1:8100")
        try:
            token = data["token"] or (self.repository.token if self.repository else "")
        except SecretError as exc:
            raise forms.ValidationError(f"The stored token can't be used ({exc}): type it in the form.") from None
        if not token:
            raise forms.ValidationError("Give the data mover token to test a new repository "
                                        "(a token is generated only when it is saved).")
        return {"url": url, "token": token, "ca_pem": data["ca_certificate"],
                "key_check": self.repository.key_check if self.repository else ""}


class GatewayForm(forms.ModelForm):
    class Meta:
        model = GatewayServer
        fields = ["name", "address", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}


