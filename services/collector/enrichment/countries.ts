/**
 * Country code -> continent and English name, for events that carry only a country code (or a geo
 * lookup that returns only one): continent is a slicing dimension, so it must always be filled.
 * Names come from ICU (Intl.DisplayNames), which Node ships with full data; continents from the
 * UN M49 grouping that GeoNames and MaxMind use (AF AN AS EU NA OC SA).
 */
const CONTINENTS: Readonly<Record<string, string>> = {
  AF: 'AO BF BI BJ BW CD CF CG CI CM CV DJ DZ EG EH ER ET GA GH GM GN GQ GW KE KM LR LS LY MA MG ML MR MU MW MZ NA NE NG RE RW SC SD SH SL SN SO SS ST SZ TD TG TN TZ UG YT ZA ZM ZW',
  AN: 'AQ BV GS HM TF',
  AS: 'AE AF AM AZ BD BH BN BT CC CN CX GE HK ID IL IN IO IQ IR JO JP KG KH KP KR KW KZ LA LB LK MM MN MO MV MY NP OM PH PK PS QA SA SG SY TH TJ TL TM TR TW UZ VN YE',
  EU: 'AD AL AT AX BA BE BG BY CH CY CZ DE DK EE ES FI FO FR GB GG GI GR HR HU IE IM IS IT JE LI LT LU LV MC MD ME MK MT NL NO PL PT RO RS RU SE SI SJ SK SM UA VA XK',
  NA: 'AG AI AW BB BL BM BQ BS BZ CA CR CU CW DM DO GD GL GP GT HN HT JM KN KY LC MF MQ MS MX NI PA PM PR SV SX TC TT US VC VG VI',
  OC: 'AS AU CK FJ FM GU KI MH MP NC NF NR NU NZ PF PG PN PW SB TK TO TV UM VU WF WS',
  SA: 'AR BO BR CL CO EC FK GF GY PE PY SR UY VE',
};

const CONTINENT_OF: ReadonlyMap<string, string> = new Map(
  Object.entries(CONTINENTS).flatMap(([continent, codes]) => codes.split(' ').map((c) => [c, continent])),
);

const NAMES = new Intl.DisplayNames(['en'], { type: 'region', fallback: 'none' });

export interface CountryInfo {
  readonly continentCode: string | undefined;
  readonly countryName: string | undefined;
}

/**
 * Memo of answers: Intl.DisplayNames.of is a measurable share of the collector's CPU per event
 * (bench/RESULTS.md, collector profile), and the key space is bounded by the validator's
 * two-letter codes (at most 26 x 26 entries).
 */
const MEMO = new Map<string, CountryInfo>();

/** `code` is an upper-case ISO 3166-1 alpha-2 code; unknown codes yield undefined fields. */
export function countryInfo(code: string): CountryInfo {
  const known = MEMO.get(code);
  if (known !== undefined) return known;
  const info = lookup(code);
  if (code.length === 2) MEMO.set(code, info);
  return info;
}

function lookup(code: string): CountryInfo {
  let countryName: string | undefined;
  try {
    countryName = NAMES.of(code);
  } catch {
    // A syntactically valid but unassigned code: no name, the event keeps its code.
    countryName = undefined;
  }
  return { continentCode: CONTINENT_OF.get(code), countryName };
}
