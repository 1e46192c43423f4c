"""Every service, built once per process on the lifespan's clients (the API and a worker
alike). Services hold no request state, so one of each serves every request."""

from dataclasses import dataclass
from datetime import timedelta

from backend.generation.admission import Admission
from backend.generation.changes import Changes
from backend.generation.lifecycle import Lifecycle
from backend.generation.repository import JobRepository
from backend.generation.service import GenerationService
from backend.generation.streams import StreamSlots
from backend.repositories.audit import AuditRepository
from backend.repositories.auth_tokens import (
    OAuthIdentityRepository,
    OAuthStateRepository,
    RefreshTokenRepository,
)
from backend.repositories.generation_usage import UsageRepository
from backend.repositories.messages import MessageRepository
from backend.repositories.projects import ProjectRepository
from backend.repositories.stripe_events import StripeEventLog, StripeEventRepository
from backend.repositories.users import UserRepository
from backend.resources import Resources
from backend.services.admin import AdminService
from backend.services.auth import AuthService
from backend.services.billing import BillingService
from backend.services.billing_webhooks import WebhookInbox
from backend.services.credentials import Credentials
from backend.services.oauth import OAuthService
from backend.services.projects import ProjectService
from backend.services.users import UserService


@dataclass(frozen=True, slots=True)
class Services:
    users: UserService
    auth: AuthService
    oauth: OAuthService
    projects: ProjectService
    generation: GenerationService
    billing: BillingService
    admin: AdminService
    webhooks: WebhookInbox | None  # None until Stripe is configured


def build_services(resources: Resources) -> Services:
    db = resources.mongo.db
    users = UserService(UserRepository(db), resources.cache)
    auth = _auth(resources, users)
    generation = build_generation(resources)
    webhooks = _webhooks(resources)
    return Services(
        users=users,
        auth=auth,
        oauth=OAuthService(
            providers=resources.oauth_providers,
            states=OAuthStateRepository(db),
            identities=OAuthIdentityRepository(db),
            users=users.users,
            user_service=users,
            auth=auth,
            frontend_origins=resources.settings.frontend_origins,
        ),
        projects=ProjectService(
            projects=ProjectRepository(db),
            messages=MessageRepository(db),
            users=UserRepository(db),
            mongo=resources.mongo,
            cache=resources.cache,
            caps=resources.caps,
        ),
        generation=generation,
        billing=BillingService(
            users=UserRepository(db),
            gateway=resources.stripe,
            cache=resources.cache,
            settings=resources.settings,
        ),
        admin=AdminService(
            mongo=resources.mongo,
            users=UserRepository(db),
            projects=ProjectRepository(db),
            jobs=JobRepository(db),
            usage=UsageRepository(db),
            refresh_tokens=RefreshTokenRepository(db),
            events=StripeEventLog(db),
            audit=AuditRepository(db),
            cache=resources.cache,
            generation=generation,
            inbox=webhooks,
            stripe_gateway=resources.stripe,
        ),
        webhooks=webhooks,
    )


def build_generation(resources: Resources) -> GenerationService:
    """Generation's parts: admission, a job's lifecycle, its changes, its event streams'
    slots, behind one service."""
    db, mongo, settings = resources.mongo.db, resources.mongo, resources.settings
    jobs, usage = JobRepository(db), UsageRepository(db)
    users, projects = UserRepository(db), ProjectRepository(db)
    lifecycle = Lifecycle(
        mongo=mongo,
        jobs=jobs,
        usage=usage,
        users=users,
        projects=projects,
        messages=MessageRepository(db),
        caps=resources.caps,
        cache=resources.cache,
        metrics=resources.metrics,
        retention=timedelta(days=resources.settings.job_data_retention_days),
    )
    admission = Admission(
        mongo=mongo,
        jobs=jobs,
        usage=usage,
        users=users,
        projects=projects,
        lifecycle=lifecycle,
        caps=resources.caps,
        queue=resources.queue,
        settings=settings,
        metrics=resources.metrics,
    )
    return GenerationService(
        admission=admission,
        lifecycle=lifecycle,
        changes=Changes(mongo=mongo, jobs=jobs, projects=projects, cache=resources.cache),
        jobs=jobs,
        usage=usage,
        hub=resources.hub,
        streams=StreamSlots(settings, resources.metrics, resources.redis),
        settings=settings,
    )


def _auth(resources: Resources, users: UserService) -> AuthService:
    credentials = Credentials.on(resources.mongo.db, resources.cache)
    return AuthService(
        users=users.users,
        user_service=users,
        refresh_tokens=credentials.refresh_tokens,
        action_tokens=credentials.action_tokens,
        credentials=credentials,
        hasher=resources.hasher,
        signer=resources.signer,
        mailer=resources.mailer,
        settings=resources.settings,
    )


def _webhooks(resources: Resources) -> WebhookInbox | None:
    if resources.stripe is None:
        return None
    settings = resources.settings
    abandoned_after = timedelta(seconds=settings.stripe_webhook_abandoned_after_s)
    return WebhookInbox(
        events=StripeEventRepository(resources.mongo.db, abandoned_after),
        users=UserRepository(resources.mongo.db),
        gateway=resources.stripe,
        cache=resources.cache,
        metrics=resources.metrics,
        prices={"pro": settings.stripe_price_pro, "team": settings.stripe_price_team},
    )
