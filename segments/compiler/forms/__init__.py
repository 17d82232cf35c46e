"""One Django form per condition type: the single place a condition's options are checked.

The same forms validate a stored definition (Segment.clean, through segments.compiler.tree),
render the admin's segment builder, and turn a leaf's JSON into its typed dataclass. A form's
errors read as short phrases ("must be a positive integer") because they are shown after the
path of the option at fault ("conditions[2].days: must be a positive integer").

One module per subject: contact.py (who the contact is), behaviour.py (what they did),
analytics.py (what segments.analytics computed); base.py and fields.py hold what they share.
"""

from segments.compiler.forms.analytics import (
    LIFECYCLE_STAGES,
    RFM_GROUPS,
    ClusterForm,
    LifecycleForm,
    PredictionForm,
    RfmForm,
)
from segments.compiler.forms.base import (
    ATTRIBUTE_PREFIX,
    CONTACT_FIELDS,
    KEY_RE,
    VALUE_OPERATORS,
    ConditionForm,
)
from segments.compiler.forms.behaviour import BehaviourForm, RecencyForm
from segments.compiler.forms.contact import (
    AttributeForm,
    ConsentForm,
    CountryForm,
    SegmentMemberForm,
    TimezoneForm,
)

__all__ = [
    "ATTRIBUTE_PREFIX",
    "CONDITION_FORMS",
    "CONDITION_LABELS",
    "CONTACT_FIELDS",
    "KEY_RE",
    "LIFECYCLE_STAGES",
    "RFM_GROUPS",
    "VALUE_OPERATORS",
    "ConditionForm",
]

# The registry the parser, the compiler and the admin's builder walk: type -> form.
CONDITION_FORMS: dict[str, type[ConditionForm]] = {
    form.condition_class.type: form
    for form in (
        AttributeForm,
        ConsentForm,
        BehaviourForm,
        RecencyForm,
        RfmForm,
        LifecycleForm,
        ClusterForm,
        PredictionForm,
        SegmentMemberForm,
        TimezoneForm,
        CountryForm,
    )
}
CONDITION_LABELS: dict[str, str] = {
    "attribute": "Contact field or custom attribute",
    "consent": "Consent",
    "behaviour": "Did an event N times in the last D days",
    "recency": "Days since last activity or purchase",
    "rfm": "RFM score or group",
    "lifecycle": "Lifecycle stage",
    "cluster": "Cluster",
    "prediction": "Predicted purchases",
    "segment": "Member of another segment",
    "timezone": "Time zone",
    "country": "Country",
}
