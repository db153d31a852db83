"""What a survey says, in English and Spanish: the page, the texts, the phone call.

The language is the first of: the page's ``?lang=``, the invite's locale (the customer's), the
browser's ``Accept-Language``, Spanish for a store in a Spanish-speaking country, English.
"""

from collections.abc import Iterable

LANGUAGES = ("en", "es")
SPANISH_COUNTRIES = {
    "ES", "MX", "AR", "CO", "CL", "PE", "VE", "EC", "GT", "CU", "BO", "DO", "HN", "PY", "SV",
    "NI", "CR", "PA", "UY", "PR", "GQ",
}  # fmt: skip
VOICE_LANGUAGE = {"en": "en-US", "es": "es-ES"}  # Twilio <Say language=...>

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "How did we do?",
        "question_nps": "How likely are you to recommend {store} to a friend or colleague?",
        "question_csat": "How satisfied are you with {store}?",
        "low_nps": "0 = not at all likely",
        "high_nps": "10 = extremely likely",
        "low_csat": "1 = very unsatisfied",
        "high_csat": "5 = very satisfied",
        "comment": "Anything you would like to tell us? (optional)",
        "submit": "Send my answer",
        "choose": "Please choose a score.",
        "thanks_title": "Thank you!",
        "thanks": "Your answer has been recorded. {store} reads every one.",
        "already": "You have already answered this survey. Thank you!",
        "expired_title": "This survey has closed",
        "expired": "This link is too old to answer. Thank you for your time.",
        "invalid_title": "This link is not valid",
        "invalid": "Please use the link exactly as you received it.",
        "language": "Language",
        "email_subject": "How did we do?",
        "email_body": "{intro}How likely are you to recommend {store}, from 0 to 10?\n\n"
        "Answer in one click: {url}",
        "email_body_csat": "{intro}How satisfied are you with {store}, from 1 to 5?\n\n"
        "Answer in one click: {url}",
        "sms_body": "{intro}{store}: how likely are you to recommend us, from 0 to 10? "
        "Reply with a number, or answer here: {url}",
        "sms_body_csat": "{intro}{store}: how satisfied are you, from 1 to 5? "
        "Reply with a number, or answer here: {url}",
        "follow_up_intro": "We recently followed up on your feedback (case #{case}). ",
        "sms_thanks": "Thank you! Your answer ({score}) has been recorded.",
        "sms_already": "Thank you, we already have your answer.",
        "sms_range": "Please reply with a number from {low} to {high}.",
        "ivr_prompt_nps": "Hello, this is {store}. On a scale from 0 to 10, how likely are you "
        "to recommend us? Press your answer on the keypad, then the hash key.",
        "ivr_prompt_csat": "Hello, this is {store}. On a scale from 1 to 5, how satisfied are "
        "you with us? Press your answer on the keypad, then the hash key.",
        "ivr_invalid": "Sorry, that is not a number from {low} to {high}.",
        "ivr_thanks": "Thank you for your answer. Goodbye.",
        "ivr_no_answer": "We did not get an answer. Goodbye.",
    },
    "es": {
        "title": "¿Qué tal lo hicimos?",
        "question_nps": "¿Qué probabilidad hay de que recomiende {store} a un amigo o colega?",
        "question_csat": "¿Cuál es su grado de satisfacción con {store}?",
        "low_nps": "0 = nada probable",
        "high_nps": "10 = muy probable",
        "low_csat": "1 = muy insatisfecho",
        "high_csat": "5 = muy satisfecho",
        "comment": "¿Quiere contarnos algo más? (opcional)",
        "submit": "Enviar mi respuesta",
        "choose": "Elija una puntuación.",
        "thanks_title": "¡Gracias!",
        "thanks": "Hemos recibido su respuesta. En {store} leemos todas.",
        "already": "Ya respondió a esta encuesta. ¡Gracias!",
        "expired_title": "Esta encuesta ha terminado",
        "expired": "Este enlace ya no admite respuestas. Gracias por su tiempo.",
        "invalid_title": "Este enlace no es válido",
        "invalid": "Use el enlace tal como lo recibió.",
        "language": "Idioma",
        "email_subject": "¿Qué tal lo hicimos?",
        "email_body": "{intro}Del 0 al 10, ¿qué probabilidad hay de que recomiende {store}?\n\n"
        "Responda con un clic: {url}",
        "email_body_csat": "{intro}Del 1 al 5, ¿cuál es su grado de satisfacción con {store}?"
        "\n\nResponda con un clic: {url}",
        "sms_body": "{intro}{store}: del 0 al 10, ¿nos recomendaría? "
        "Responda con un número o aquí: {url}",
        "sms_body_csat": "{intro}{store}: del 1 al 5, ¿qué tan satisfecho está? "
        "Responda con un número o aquí: {url}",
        "follow_up_intro": "Hace poco atendimos su opinión (caso n.º {case}). ",
        "sms_thanks": "¡Gracias! Hemos registrado su respuesta ({score}).",
        "sms_already": "Gracias, ya tenemos su respuesta.",
        "sms_range": "Responda con un número del {low} al {high}.",
        "ivr_prompt_nps": "Hola, le llamamos de {store}. Del 0 al 10, ¿qué probabilidad hay de "
        "que nos recomiende? Marque su respuesta en el teclado y pulse la tecla almohadilla.",
        "ivr_prompt_csat": "Hola, le llamamos de {store}. Del 1 al 5, ¿qué tan satisfecho está "
        "con nosotros? Marque su respuesta en el teclado y pulse la tecla almohadilla.",
        "ivr_invalid": "Lo sentimos, no es un número del {low} al {high}.",
        "ivr_thanks": "Gracias por su respuesta. Adiós.",
        "ivr_no_answer": "No hemos recibido respuesta. Adiós.",
    },
}


def _language_of(tag: str | None) -> str | None:
    if not tag:
        return None
    primary = tag.strip().lower().replace("_", "-").split("-", 1)[0]
    return primary if primary in LANGUAGES else None


def accept_language(header: str | None) -> list[str]:
    """The languages of an ``Accept-Language`` header, most wanted first (q-values honoured)."""
    if not header:
        return []
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        weighted.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(weighted)]


def pick_language(
    *,
    asked: str | None = None,
    locale: str | None = None,
    browser: Iterable[str] = (),
    country: str | None = None,
) -> str:
    for candidate in (asked, locale, *browser):
        language = _language_of(candidate)
        if language:
            return language
    return "es" if (country or "").upper() in SPANISH_COUNTRIES else "en"


def text(language: str, key: str, **values: object) -> str:
    table = TEXTS.get(language, TEXTS["en"])
    return table[key].format(**values) if values else table[key]
