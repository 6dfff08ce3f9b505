"""Word lists for offline hard-negative generation, and a part-of-speech lookup over them.

The rules backend of :mod:`read_trainer.data.negatives` tags captions with these lists
instead of a statistical parser, so the package needs no model download. The lists aim
at MS-COCO-style captions (the reference training data): the 80 COCO object classes,
the people, places, food and furniture that captions mention, their colours, materials,
sizes, counts, spatial relations and actions.

Two ideas shape every list:

* **Concepts, not words.** Entries written ``"couch|sofa"`` are one *concept*.
  A replacement must change the concept, otherwise "a man on a couch" -> "a man on a
  sofa" would be a "negative" that still describes the image (a false negative, which
  teaches the model the wrong thing). Hypernyms such as "person", "animal", "food" are
  marked generic and are never replaced nor used as replacements, for the same reason.
* **Replacement classes.** Replacements stay in a class (animal for animal, vehicle for
  vehicle, colour for colour, posture verb for posture verb) so negatives stay fluent
  and plausible; a negative that is ungrammatical can be rejected from text alone and
  teaches CLIP a shortcut instead of grounding.

Notation in the raw lists below (parsed once at import):

* ``sing/plur`` gives an irregular plural; ``sing/-`` a mass noun (no plural, no "a");
  ``-/plur`` a plural-only noun; otherwise the plural is made by :func:`pluralize`.
* Multi-word entries use ``_`` for the space (``cell_phone``).
* Verbs: ``base`` or ``base/3sg/ing/past`` for irregular forms (empty part = regular).
"""

from __future__ import annotations

from dataclasses import dataclass

# --------------------------------------------------------------------------------------
# Closed classes (function words). Their tags win over open-class readings.
# --------------------------------------------------------------------------------------

ARTICLES = frozenset({"a", "an"})

DETERMINERS = frozenset(
    """a an the this these those some any each every another no his her its their our
    my your both all either neither such whose""".split()
)

# Quantity words that behave like determiners in front of a plural noun.
QUANTIFIERS = frozenset("several many few multiple numerous various".split())

PRONOUNS = frozenset(
    """he she it they them him we us you i me someone something somebody anyone anything
    everyone everything nobody nothing one's there here who whom which what himself
    herself itself themselves""".split()
)

AUXILIARIES = frozenset(
    """is are was were be been being am has have had having do does did can could will
    would should may might must 's 're""".split()
)

CONJUNCTIONS = frozenset("and or but nor & while as that than so yet if when where because".split())

# Words that link two coordinated phrases without saying who does what to whom:
# swapping the two sides of "a cat and a dog" or "a cat next to a dog" gives a caption
# that still describes the image, so swaps across these links are refused.
SYMMETRIC_LINKS = frozenset(
    ["and", "or", "&", "nor", "plus", "next to", "near", "beside", "alongside", "by",
     "and a", "and an", "and the", "or a", "or an", "as well as", "along with",
     "together with", "close to", "adjacent to"]
)

# Fixed expressions that must stay one unit: "side by side" is not a relation "by"
# between two "side"s, "each other" is not a noun phrase.
FIXED_PHRASES: dict[str, str] = {
    "side by side": "ADV", "each other": "PRON", "one another": "PRON",
    "on display": "ADV", "at night": "ADV", "in color": "ADV", "in colour": "ADV",
    "close up": "ADV", "up close": "ADV", "close together": "ADV", "for sale": "ADV", "in half": "ADV",
    "at the same time": "ADV", "a lot of": "DET", "lots of": "DET", "a couple of": "DET",
    "a number of": "DET", "a few": "DET", "a bunch of": "DET",
}

# Particles that follow a verb ("walking away", "picking up").
PARTICLES = frozenset("away up down out off on back over around along together".split())

ADVERBS = frozenset(
    """together quickly slowly closely carefully happily alone nearby outside inside
    outdoors indoors away high low fast straight sideways upside downward upward
    quietly gently proudly lazily calmly peacefully playfully intently eagerly
    neatly loosely tightly brightly heavily partially partly fully completely nearly
    almost very really also still just only even too well far here there""".split()
)

# Adverbs that are intensifiers or discourse words: they are tagged ADV but swapping
# them says nothing about the image ("very"/"also" carry no grounded meaning).
NON_CONTENT_ADVERBS = frozenset(
    "very really also still just only even too well almost nearly here there so".split()
)

# --------------------------------------------------------------------------------------
# Prepositions and spatial relations.
# --------------------------------------------------------------------------------------

# Concept groups of spatial prepositions: a replacement must come from another group.
SPATIAL_RELATIONS: dict[str, tuple[str, ...]] = {
    "on": ("on", "onto", "upon", "atop", "on top of"),
    "in": ("in", "inside", "into", "within", "inside of"),
    "at": ("at",),
    "under": ("under", "underneath", "beneath", "below"),
    "above": ("above", "over"),
    "next": ("next to", "beside", "near", "alongside", "close to", "nearby", "adjacent to"),
    "behind": ("behind", "in back of"),
    "front": ("in front of",),
    "across": ("across", "across from", "opposite"),
    "around": ("around",),
    "between": ("between",),
    "through": ("through",),
    "along": ("along",),
    "against": ("against",),
    "outside": ("outside", "outside of"),
    "toward": ("toward", "towards"),
    "away": ("away from",),
    "off": ("off", "off of"),
    "out": ("out of",),
    "among": ("among", "amongst"),
    "middle": ("in the middle of",),
    "left": ("to the left of", "on the left of", "left of"),
    "right": ("to the right of", "on the right of", "right of"),
    "top": ("on the top of",),
    "side": ("on the side of", "by the side of"),
    "down": ("down",),
    "up": ("up",),
    "past": ("past",),
    "with": ("with",),
    "without": ("without",),
}

# Relation concepts we never replace: "by" is often the agent ("pulled by a horse"),
# "with"/"without" only swap with each other (below), "up"/"down" are mostly particles.
NON_REPLACEABLE_RELATIONS = frozenset({"up", "down", "past", "along", "off", "out"})

# Replacement pairs that read as paraphrases in COCO captions ("sitting in/on a chair",
# "at/on the beach") and so would be false negatives.
CONFUSABLE_RELATIONS = frozenset(
    {frozenset(p) for p in [("on", "in"), ("on", "at"), ("in", "at"), ("in", "middle"),
                            ("on", "top"), ("above", "on"), ("in", "among"),
                            ("in", "between"), ("across", "through"), ("next", "side"),
                            ("in", "through"), ("on", "along"), ("in", "outside"),
                            ("in", "out"), ("top", "above")]}
)

# "with" and "without" are a relation pair of their own: "a bathroom with blue walls"
# is contradicted by "without", not by a spatial preposition. The generator's checks refuse
# the pair (read on real captions, most such negatives were unnatural or unclear in scope).
EXCLUSIVE_RELATION_PAIRS = {"with": ("without",), "without": ("with",)}

# Other prepositions: tagged PREP (they end noun phrases) but never replaced.
OTHER_PREPOSITIONS = frozenset(
    """of for from to about like during after before since until via per by including
    except than despite beyond throughout underneath""".split()
)

# Prepositions that are no relation at all; they are not swapped either ("a group of
# people" -> "a group on people" garbles rather than negates).
NON_RELATIONAL_PREPOSITIONS = frozenset("of for about like than since until per including except".split())

# --------------------------------------------------------------------------------------
# Attributes (adjectives). Groups of concepts; within a group any other concept is a
# replacement. Words joined by "|" are one concept.
# --------------------------------------------------------------------------------------

ATTRIBUTE_GROUPS: dict[str, list[str]] = {
    "color": [
        "white", "black", "red", "blue", "green", "yellow", "orange", "purple|violet",
        "pink", "brown", "gray|grey", "silver", "gold|golden", "tan|beige", "teal|turquoise|cyan",
        "maroon", "navy", "blond|blonde", "colorful|colourful|multicolored|multi-colored",
    ],
    "material": [
        "wooden|wood", "metal|metallic|steel|iron|stainless", "glass", "plastic",
        "stone", "brick", "concrete|cement", "leather", "paper", "cardboard",
        "ceramic|porcelain", "marble", "wicker", "cloth|fabric", "rubber", "tile|tiled",
        "straw", "wool|woolen", "silk", "denim", "granite", "bamboo",
    ],
    "pattern": ["striped", "spotted|polka-dot", "checkered|checked", "plaid", "floral"],
    "shape": ["round|circular", "square", "rectangular", "triangular", "oval", "heart-shaped"],
    "terrain": ["grassy", "sandy", "snowy|snow-covered", "rocky", "muddy", "dusty", "leafy"],
    "weather": ["sunny", "cloudy|overcast", "rainy", "foggy|misty", "stormy"],
}

# Antonym sides for the remaining attributes: a word is replaced by a word from the other
# side. (Not groups: "large" -> "big" would be a synonym, hence a false negative.)
ATTRIBUTE_ANTONYMS: list[tuple[str, str]] = [
    ("big large huge giant enormous", "small little tiny"),
    ("tall", "short"),
    ("long", "short"),
    ("old", "new young"),
    ("older", "younger"),
    ("bigger larger", "smaller"),
    ("taller", "shorter"),
    ("empty", "full crowded busy"),
    ("busy crowded", "empty quiet deserted"),
    ("open", "closed"),
    ("wet", "dry"),
    ("clean", "dirty messy"),
    ("neat tidy", "messy"),
    ("hot warm", "cold"),
    ("bright", "dark dim"),
    ("wide", "narrow"),
    ("thick", "thin"),
    ("fat", "skinny thin"),
    ("happy", "sad"),
    ("modern", "antique old-fashioned vintage"),
    ("cooked", "raw"),
    ("high", "low"),
    ("deep", "shallow"),
    ("asleep", "awake"),
    ("male", "female"),
    ("indoor", "outdoor"),
    ("sliced", "whole"),
    ("lit", "unlit"),
    ("calm", "rough"),
    ("fresh", "rotten"),
    ("adult", "baby"),
    ("smooth", "rough"),
    ("curly", "straight"),
    ("hard", "soft"),
    ("heavy", "light"),
]

# "old" is "young" for people and animals but "new" for things: a replacement picks by
# the class of the noun it describes (see negatives._attribute_options).
AGE_ANTONYMS = {"old": ("young", "new"), "older": ("younger", "newer")}
ANIMATE_CLASSES = frozenset({"person", "person_role", "animal", "generic"})

# Left/right are relations more than attributes ("to the left of"); replace_rel flips them.
DIRECTION_ANTONYMS = {"left": "right", "right": "left"}

# Adjectives we tag but never replace (no safe opposite): they still bound noun phrases
# and can take part in adjective swaps.
OTHER_ADJECTIVES = frozenset(
    """nice beautiful pretty cute lovely ugly fancy plain various different other same
    several professional electric public stuffed tasty delicious healthy fried grilled
    baked frosted decorated favorite favourite single double huge giant wild domestic
    little main local adorable cozy large small modern shiny fluffy furry hairy
    partial crowded busy sunny tall dead alive ornate elaborate unusual strange funny
    fake real toy miniature extra front rear back top bottom upper lower middle
    various assorted different several gourmet homemade italian chinese mexican
    american british french japanese asian african indian vegetarian vegan traditional
    giant half whole full empty brand-new old-fashioned ready busy open
    lone only other another able abandoned broken decorative formal casual dark light
    bright pale
    stainless clear blurry blurred bare empty fresh""".split()
)

NUMBER_WORDS: dict[str, int] = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "twenty": 20,
}

# Counts a replacement may use: a plural noun stays plural, so "one" is left out.
REPLACEABLE_COUNTS = ("two", "three", "four", "five", "six")

# --------------------------------------------------------------------------------------
# Nouns, by replacement class. "generic" nouns are hypernyms or vague: never replaced.
# --------------------------------------------------------------------------------------

NOUN_CLASSES: dict[str, list[str]] = {
    "person": [
        "man/men|guy|gentleman/gentlemen|male", "woman/women|lady/ladies|female", "boy",
        "girl", "child/children|kid", "baby/babies|infant|toddler", "teenager|teen",
    ],
    "person_role": [
        "player", "skier", "snowboarder", "surfer", "skateboarder|skater", "cyclist|biker",
        "batter", "catcher", "pitcher", "umpire", "chef|cook", "police_officer|policeman/policemen|cop",
        "soldier", "rider", "driver", "passenger", "student", "worker", "farmer", "tourist",
        "vendor", "bride", "groom", "waiter|waitress/waitresses", "doctor", "nurse",
        "fireman/firemen|firefighter", "athlete", "tennis_player", "baseball_player",
        "soccer_player", "clown", "pilot",
    ],
    "animal": [
        "dog|puppy/puppies", "cat|kitten|kitty/kitties", "horse|pony/ponies", "sheep/sheep|lamb",
        "cow|cattle/-|calf/calves|bull", "elephant", "bear|grizzly|grizzly_bear", "zebra", "giraffe", "bird",
        "duck", "goose/geese", "pigeon", "seagull|gull", "chicken|hen|rooster", "pig",
        "goat", "deer/deer", "monkey", "lion", "tiger", "fish/fish", "squirrel", "rabbit|bunny/bunnies",
        "owl", "parrot", "swan", "butterfly/butterflies", "polar_bear",
        "donkey", "camel", "turtle", "crow",
    ],
    "vehicle": [
        "car|automobile", "truck|pickup_truck|pickup", "bus/buses", "train|locomotive",
        "motorcycle|motorbike|motor_bike", "bicycle|bike", "boat", "airplane|plane|jet|aircraft/aircraft|airliner|aeroplane|jetliner",
        "van", "taxi|cab", "tractor", "scooter", "trolley|tram|streetcar", "ship",
        "jeep", "suv", "fire_truck|firetruck", "helicopter", "kayak", "canoe", "sailboat",
        "yacht", "cart", "wagon", "carriage", "subway", "limo|limousine", "ambulance",
        "double_decker_bus/double_decker_buses", "school_bus/school_buses", "police_car",
        "motor_scooter", "skateboard", "surfboard", "snowboard", "sled",
    ],
    "food": [
        "pizza", "sandwich", "cake", "donut|doughnut", "banana", "apple", "broccoli/-",
        "carrot", "hot_dog|hotdog", "hamburger|burger|cheeseburger", "salad", "soup/-",
        "bread/-", "cheese/-", "meat/-", "rice/-", "pasta/-|spaghetti/-|noodle", "egg",
        "-/fries|french_fries", "tomato/tomatoes", "potato/potatoes", "onion", "pepper",
        "cookie", "pie", "muffin", "cupcake", "dessert", "bagel", "taco", "burrito",
        "steak", "pastry/pastries", "croissant", "pancake", "waffle", "lemon", "lime",
        "strawberry/strawberries", "grape", "pineapple", "watermelon", "orange",
        "cucumber", "mushroom", "corn/-", "lettuce/-", "spinach/-", "sausage", "bacon/-",
        "chicken_wing", "shrimp/shrimp", "sushi/-", "cereal/-", "yogurt/-", "ice_cream/-",
        "chocolate/-", "pear", "peach/peaches", "avocado", "cauliflower/-", "zucchini/-",
        "celery/-", "olive", "bean", "pea", "fruit/-", "vegetable", "berry/berries",
        "sauce/-", "ham/-", "fish_fillet", "omelet", "toast/-", "doughnut_hole",
        "wedding_cake", "birthday_cake",
    ],
    "drink": ["coffee/-", "tea/-", "wine/-", "beer/-", "juice/-", "milk/-", "soda/-", "water_bottle"],
    "furniture": [
        "chair", "couch|sofa", "bed", "table|dining_table", "desk", "bench/benches",
        "shelf/shelves|bookshelf/bookshelves|bookcase", "cabinet|cupboard", "dresser",
        "stool", "ottoman", "armchair", "nightstand", "counter|countertop", "crib",
        "futon", "recliner", "coffee_table", "end_table",
    ],
    "tableware": [
        "cup|mug", "bowl", "plate|dish/dishes", "fork", "knife/knives", "spoon",
        "glass/glasses", "bottle", "wine_glass/wine_glasses", "vase", "pot", "pan",
        "tray", "napkin", "basket", "jar", "jug", "teapot", "kettle",
        "platter", "cutting_board", "container", "lid", "straw", "chopstick",
        "wine_bottle", "coffee_cup", "coffee_mug", "paper_plate", "saucer", "tupperware/-",
    ],
    "appliance": [
        "oven", "microwave", "refrigerator|fridge", "sink", "toilet", "toaster", "stove",
        "blender", "dishwasher", "washing_machine", "bathtub|tub|bath_tub", "shower",
        "faucet|tap", "hair_dryer|hair_drier|blow_dryer", "fan|ceiling_fan", "heater",
        "urinal", "mixer", "coffee_maker",
    ],
    "electronics": [
        "tv|television|tv_set", "laptop|notebook_computer", "computer|desktop_computer|pc",
        "keyboard", "mouse/mice|computer_mouse/computer_mice", "cell_phone|cellphone|phone|smartphone|mobile_phone|iphone",
        "remote|remote_control|controller|wii_remote|wii_controller", "monitor|computer_monitor|screen", "camera",
        "tablet|ipad", "speaker", "headphone|earphone", "printer", "video_game",
        "radio", "clock", "lamp", "light_bulb",
    ],
    "household": [
        "book", "pillow|cushion", "blanket|quilt|comforter", "towel", "curtain|drape",
        "rug|carpet", "mirror", "candle", "umbrella|parasol", "-/scissors", "toothbrush/toothbrushes",
        "suitcase|luggage/-", "backpack", "handbag|purse|bag", "box/boxes",
                "picture_frame|frame", "painting|poster", "magazine", "newspaper",
        "calendar", "toy", "doll", "teddy_bear", "stuffed_animal", "balloon",
        "trash_can|garbage_can|bin|trash_bin", "bucket", "broom", "soap/-", "toothpaste/-",
        "sheet", "paper_towel", "toilet_paper/-", "shower_curtain", "window", "door",
        "wall", "floor", "ceiling", "staircase|stair|step", "fireplace", "closet",
        "drawer", "cabinet_door", "outlet", "light_switch", "candle_holder",
    ],
    "clothing": [
        "hat|cap", "helmet", "jacket|coat", "shirt|t-shirt|tshirt", "dress/dresses",
        "tie|necktie", "-/sunglasses", "-/eyeglasses", "shoe", "boot",
        "glove|mitt", "scarf/scarves", "uniform", "suit", "sweater", "hoodie", "vest", "tank_top",
        "-/jeans", "-/pants|-/trousers", "-/shorts", "skirt", "wetsuit", "apron",
        "costume", "sock", "bikini", "swimsuit", "jersey", "bandana",
        "headband", "wristband", "watch/watches|wristwatch/wristwatches", "necklace",
        "bracelet", "earring", "ring",
    ],
    "sports": [
        "kite", "frisbee", "ball|soccer_ball|football|baseball|tennis_ball|basketball",
        "bat|baseball_bat", "baseball_glove|baseball_mitt", "racket|racquet|tennis_racket|tennis_racquet",
        "ski", "ski_pole", "net", "goal", "skate",
        "golf_club", "hockey_stick", "base", "home_plate",
    ],
    "street": [
        "sign|street_sign|road_sign", "stop_sign", "traffic_light|stop_light|traffic_signal",
        "fire_hydrant|hydrant", "parking_meter|meter", "pole|lamp_post|light_pole|street_light|street_lamp",
        "fence", "building", "house|home", "tower|clock_tower", "bridge",
        "statue|sculpture", "fountain", "tent", "barn", "church", "castle", "skyscraper",
        "lighthouse", "billboard", "post", "gate", "car_park",
        "bus_stop", "train_station|station", "platform", "track|railroad_track|train_track|rail",
        "power_line|wire", "mailbox/mailboxes", "cone|traffic_cone", "umbrella_stand",
        "awning", "crosswalk", "balcony/balconies", "roof", "chimney", "porch/porches",
        "doorway", "storefront", "shop|store", "restaurant|cafe|diner", "hotel", "hospital",
    ],
    # Places are split so a replacement stays plausible: a room for a room, an outdoor
    # place for an outdoor place, a ground surface for a ground surface.
    "room": [
        "kitchen", "bathroom|restroom", "bedroom", "living_room|lounge", "room", "office",
        "classroom", "library/libraries", "bakery/bakeries", "hallway|corridor", "studio",
        "garage", "dining_room", "hotel_room", "closet", "basement", "attic", "lobby",
    ],
    "outdoors": [
        "street|road|avenue", "field|meadow|pasture", "beach/beaches|shore|coast",
        "park", "city|town", "sidewalk|pavement", "yard|backyard|lawn", "ocean|sea", "lake",
        "river|stream|creek", "hill|hillside", "mountain|mountainside|slope|ski_slope",
        "forest|woods/-", "airport", "runway|tarmac/-", "zoo", "farm", "market",
        "parking_lot", "highway|freeway", "court|tennis_court", "stadium",
        "pool|swimming_pool", "intersection", "garden", "harbor|harbour|dock|pier|marina",
        "desert", "jungle", "valley", "cliff", "island", "pond", "alley", "path|trail",
        "enclosure|pen", "playground", "skate_park", "baseball_field|ballpark|baseball_diamond",
        "countryside", "village", "neighborhood|neighbourhood", "plaza", "airfield",
        "subway_station", "sky/skies", "cage", "stage", "body_of_water/bodies_of_water",
    ],
    "ground": ["dirt/-", "grass/-", "snow/-", "sand/-", "water/-", "mud/-", "ice/-", "gravel/-", "ground"],
    "nature": [
        "tree", "bush/bushes|shrub", "flower|bouquet", "plant|houseplant|potted_plant",
        "rock|boulder", "wave", "waterfall", "log", "leaf/leaves", "branch/branches",
    ],
    "body": [
        "hand", "head", "mouth", "arm", "leg", "face", "hair/-", "eye", "foot/feet",
        "tail", "nose", "trunk", "ear", "finger", "neck", "knee", "lap",
        "shoulder", "tooth/teeth", "beard", "paw", "wing", "horn", "mane",
        "tusk", "hoof/hooves",
    ],
    "shape_object": ["cube", "sphere", "cylinder", "pyramid", "block", "toy_block"],
    # Words added after the classes above were fixed: classes of their own, so that the
    # replacement pools of the classes above (and every negative drawn from them) stay as
    # they were. Family words replace each other ("mother" -> "father"); the others are
    # known (for what they can do and where they can be) but only replace within this list.
    "family": [
        "mother|mom|mommy", "father|dad|daddy", "son", "daughter", "husband", "wife/wives", "brother", "sister",
    ],
    "more_objects": [
        "seat", "briefcase", "microphone|mic", "flag", "skillet", "trailer", "ramp", "tunnel", "curb", "rack",
        "hay/-", "stick", "collar", "telephone", "bun", "spatula", "-/bleachers", "dugout", "chick",
        "ox/oxen", "vanity/vanities", "sticker", "cloud", "thumb",
    ],
    "more_shapes": ["star", "diamond", "cross/crosses"],
    # Concrete but vague nouns (hypernyms, collectives, meals): they can be swapped, as
    # they name things in the image, but never replaced: "a person" -> "a man" may still
    # be true of the image.
    "generic": [
        "person", "-/people", "thing", "object", "animal", "vehicle", "food/-", "item",
        "family/families", "friend", "adult", "individual", "spectator", "audience",
        "crowd", "team", "meal", "lunch", "dinner", "breakfast", "snack", "sun/-", "rain/-",
        "light", "shadow", "reflection", "toppings|topping", "frosting/-", "icing/-",
        "sprinkle", "decoration", "tennis/-", "soccer/-", "skiing/-", "surfing/-",
        "skateboarding/-", "snowboarding/-", "game", "match", "trick", "event", "party",
        "ride", "walk", "race",
    ],
    # Framing nouns that name no object ("a picture of", "the side of", "a group of"):
    # neither swapped nor replaced, since moving them garbles rather than negates.
    "frame": [
        "area", "picture|photo|image|photograph|pic|shot|snapshot", "group",
        "bunch/bunches", "-/lots", "pair", "couple", "view", "side", "top", "front",
        "middle", "background", "foreground", "day", "night", "way", "kind", "type",
        "piece", "slice", "herd", "flock", "pile", "stack", "row", "line", "set",
        "variety/varieties", "number", "pack", "display", "assortment", "collection",
        "close_up|closeup|close-up", "scene", "bit", "edge", "corner", "end",
        "center|centre", "part", "distance", "surface", "table_top|tabletop", "sunset",
        "sunrise", "evening", "morning", "afternoon", "time", "look", "color", "colour",
        "shade", "design", "pattern", "style", "space", "air", "weather/-", "daytime/-",
        "nighttime/-", "setting", "level", "bottom", "photo_booth", "display_case",
    ],
}

# Measure/collective nouns: in "a group of people" the noun phrase runs through "of" and
# its head is "people"; swapping "group" alone would garble the caption.
MEASURE_NOUNS = frozenset(
    """group bunch lot lots pair couple herd flock pile stack row line variety number
    crowd team pack assortment collection slice piece set plate bowl cup glass box
    basket bag tray display close-up closeup kind type sort couple few handful dozen
    bottle jar platter loaf side top front middle edge corner end back bottom part
    view picture photo image photograph amount""".split()
)

# --------------------------------------------------------------------------------------
# Verbs, by replacement class. The class also fixes transitivity: posture and motion
# verbs are followed by a preposition or nothing, handling verbs by an object, so a
# replacement from the same class keeps the sentence well formed.
# --------------------------------------------------------------------------------------

VERB_CLASSES: dict[str, list[str]] = {
    "posture": [
        "sit/sits/sitting/sat", "stand/stands/standing/stood", "lie/lies/lying/lay|lay/lays/laying/laid",
        "kneel/kneels/kneeling/knelt", "lean", "crouch|squat", "rest|relax", "sleep/sleeps/sleeping/slept|nap",
        "wait", "pose", "perch", "hang/hangs/hanging/hung", "float", "hide/hides/hiding/hid",
        "huddle", "gather",
    ],
    "motion": [
        "walk|stroll|wander", "run/runs/running/ran|jog", "jump|leap|hop", "fly/flies/flying/flew",
        "swim/swims/swimming/swam", "ski/skis/skiing/skied", "surf", "skate|skateboard",
        "snowboard", "climb", "dive", "graze", "drive/drives/driving/drove", "ride/rides/riding/rode",
        "race", "travel", "sail", "cross", "roll", "slide/slides/sliding/slid", "fall/falls/falling/fell",
        "dance", "play", "head", "drift", "march", "crawl", "paddle", "splash", "wade",
    ],
    "handle": [
        "hold/holds/holding/held|grip", "carry/carries/carrying/carried", "throw/throws/throwing/threw|toss|pitch",
        "catch/catches/catching/caught", "kick", "hit/hits/hitting/hit|strike/strikes/striking/struck",
        "push/pushes", "pull|drag", "grab", "lift|raise", "swing/swings/swinging/swung", "drop",
        "cut/cuts/cutting/cut|slice|chop", "open", "close", "touch/touches", "wash/washes|clean|scrub",
        "brush/brushes", "fix/fixes|repair", "paint", "fill", "load", "pour", "pet", "hug", "feed/feeds/feeding/fed",
        "chase", "use", "read/reads/reading/read", "sell/sells/selling/sold", "serve", "cook|prepare|make/makes/making/made|bake",
        "wear/wears/wearing/wore", "kiss/kisses",
        "tie", "shake/shakes/shaking/shook", "blow/blows/blowing/blew",
        "lead/leads/leading/led", "follow", "photograph",
        "arrange", "decorate", "drink/drinks/drinking/drank|sip", "eat/eats/eating/ate|munch/munches|devour",
        "bite/bites/biting/bit", "lick", "chew", "smell", "sniff",
    ],
    "perceive": [
        "look|stare|gaze|peer|glance", "watch/watches|observe|view|see/sees/seeing/saw", "talk|chat|speak/speaks/speaking/spoke",
        "smile", "laugh", "point", "listen", "wave", "yell|shout|scream", "cheer",
        "celebrate", "sing/sings/singing/sang", "check", "examine|inspect",
        "admire", "greet", "face/faces", "work", "study/studies", "shop/shops/shopping/shopped",
    ],
}

# Verbs whose meaning needs their own particle ("looking at", "talking on", "waiting for"):
# replacing only the verb would leave a wrong particle behind, so they are swapped but
# not replaced.
PARTICLE_VERBS = frozenset(
    "look stare gaze peer glance talk chat speak smile laugh point listen wait wave yell "
    "shout scream cheer face work lean".split()
)

# Words ending in -ing/-ed that are nouns or adjectives, not verb forms; unknown words
# with those endings are otherwise guessed to be verbs.
NON_VERB_ING_ED = frozenset(
    """ceiling building clothing wedding evening morning railing frosting icing topping
    dressing filling parking living dining swimming pudding stuffing bedding siding
    awning king thing something nothing anything everything spring string ring wing
    sibling seedling lightning bed red shed sled ted""".split()
)

# Irregular plural -> singular is read from the noun lists; regular plural rules here.
_DOUBLE_FINAL_CONSONANT = frozenset(
    """sit run swim cut put hit shop jog stop get set dig grab pat pet chop drop skip
    wrap rub hug nap plan tip slip drag bat clap trim spin begin let bet hop film_no
    beg dip zip mop sip""".split()
)


# --------------------------------------------------------------------------------------
# Morphology
# --------------------------------------------------------------------------------------


def pluralize(noun: str) -> str:
    """Regular English plural of ``noun`` (its last word for a multi-word noun)."""
    head, sep, last = noun.rpartition(" ")
    if last.endswith(("s", "x", "z", "ch", "sh")):
        plural = last + "es"
    elif last.endswith("y") and last[-2:-1] not in ("a", "e", "i", "o", "u"):
        plural = last[:-1] + "ies"
    else:
        plural = last + "s"
    return head + sep + plural


def _third_person(verb: str) -> str:
    if verb.endswith(("s", "x", "z", "ch", "sh", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2:-1] not in ("a", "e", "i", "o", "u"):
        return verb[:-1] + "ies"
    return verb + "s"


def _present_participle(verb: str) -> str:
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb in _DOUBLE_FINAL_CONSONANT:
        return verb + verb[-1] + "ing"
    if verb.endswith("e") and not verb.endswith(("ee", "ye", "oe")):
        return verb[:-1] + "ing"
    return verb + "ing"


def _past(verb: str) -> str:
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2:-1] not in ("a", "e", "i", "o", "u"):
        return verb[:-1] + "ied"
    if verb in _DOUBLE_FINAL_CONSONANT:
        return verb + verb[-1] + "ed"
    return verb + "ed"


# --------------------------------------------------------------------------------------
# Parsed lookup tables
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NounForm:
    """One surface form of a lexicon noun.

    ``number`` is "sg", "pl" or "mass"; ``singular``/``plural`` are the forms of the
    same word (``plural`` is None for mass nouns, ``singular`` None for plural-only).
    """

    concept: str
    cls: str
    number: str
    singular: str | None
    plural: str | None


@dataclass(frozen=True)
class VerbForm:
    """One surface form of a lexicon verb; ``form`` is "base", "3sg", "ing" or "past"."""

    concept: str
    cls: str
    form: str
    forms: tuple[str, str, str, str]  # base, 3sg, ing, past of the same verb


def _parse_noun_entry(entry: str) -> tuple[str | None, str | None]:
    """``"man/men"`` -> ("man", "men"); ``"water/-"`` -> ("water", None); ``"-/fries"`` -> (None, "fries")."""
    word = entry.replace("_", " ")
    if "/" not in word:
        return word, pluralize(word)
    singular, plural = word.split("/", 1)
    return (None if singular == "-" else singular), (None if plural == "-" else plural)


def _noun_concept(first_word: str) -> str:
    """A concept is named by its first spelling (its plural for plural-only nouns)."""
    singular, plural = _parse_noun_entry(first_word)
    return singular if singular is not None else plural


def _build_nouns() -> dict[str, NounForm]:
    forms: dict[str, NounForm] = {}
    for cls, entries in NOUN_CLASSES.items():
        for entry in entries:
            words = entry.split("|")
            concept = _noun_concept(words[0])
            for word in words:
                singular, plural = _parse_noun_entry(word)
                if singular is not None:
                    number = "sg" if plural is not None else "mass"
                    forms.setdefault(singular, NounForm(concept, cls, number, singular, plural))
                if plural is not None:
                    forms.setdefault(plural, NounForm(concept, cls, "pl", singular, plural))
    return forms


def _build_verbs() -> dict[str, VerbForm]:
    forms: dict[str, VerbForm] = {}
    for cls, entries in VERB_CLASSES.items():
        for entry in entries:
            words = entry.split("|")
            concept = words[0].split("/")[0]
            for word in words:
                parts = word.split("/")
                base = parts[0]
                regular = (base, _third_person(base), _present_participle(base), _past(base))
                given = parts + [""] * (4 - len(parts))
                all_forms = tuple(g or r for g, r in zip(given, regular))
                for form_name, surface in zip(("base", "3sg", "ing", "past"), all_forms):
                    forms.setdefault(surface, VerbForm(concept, cls, form_name, all_forms))
    return forms


def _build_attributes() -> tuple[dict[str, tuple[str, str]], dict[str, frozenset[str]]]:
    """Attribute word -> (group, concept), and antonym word -> replacement words."""
    attributes: dict[str, tuple[str, str]] = {}
    for group, concepts in ATTRIBUTE_GROUPS.items():
        for entry in concepts:
            words = entry.split("|")
            for word in words:
                attributes.setdefault(word, (group, words[0]))
    antonyms: dict[str, set[str]] = {}
    for side_a, side_b in ATTRIBUTE_ANTONYMS:
        a_words, b_words = side_a.split(), side_b.split()
        for word in a_words:
            antonyms.setdefault(word, set()).update(b_words)
        for word in b_words:
            antonyms.setdefault(word, set()).update(a_words)
    return attributes, {w: frozenset(r) for w, r in antonyms.items()}


def _build_relations() -> dict[str, str]:
    """Spatial preposition (possibly multi-word) -> its concept."""
    return {phrase: concept for concept, phrases in SPATIAL_RELATIONS.items() for phrase in phrases}


NOUNS: dict[str, NounForm] = _build_nouns()
VERBS: dict[str, VerbForm] = _build_verbs()
ATTRIBUTES, ANTONYMS = _build_attributes()
RELATIONS: dict[str, str] = _build_relations()

ADJECTIVES = frozenset(ATTRIBUTES) | frozenset(ANTONYMS) | OTHER_ADJECTIVES | frozenset(DIRECTION_ANTONYMS)
PREPOSITIONS = frozenset(w for w in RELATIONS if " " not in w) | OTHER_PREPOSITIONS

# Every multi-word unit, by its first word, longest first: the tokenizer merges them so
# that "in front of" is one relation and "hot dog" one noun (never "hot" + "dog").
_MULTIWORD = sorted(
    {w for w in (*NOUNS, *RELATIONS, *FIXED_PHRASES) if " " in w}, key=lambda w: (-len(w.split()), w)
)
MULTIWORD_BY_FIRST: dict[str, tuple[tuple[str, ...], ...]] = {}
for _phrase in _MULTIWORD:
    _words = tuple(_phrase.split())
    MULTIWORD_BY_FIRST.setdefault(_words[0], ())
    MULTIWORD_BY_FIRST[_words[0]] += (_words,)

# Replacement pools, built once: class -> number -> list of (concept, surface form).
REPLACEABLE_NOUN_CLASSES = frozenset(NOUN_CLASSES) - {"generic", "frame"}
SWAPPABLE_NOUN_CLASSES = frozenset(NOUN_CLASSES) - {"frame"}


def _noun_pools() -> dict[tuple[str, str], tuple[tuple[str, str], ...]]:
    """(class, number) -> (concept, surface form) pairs a replacement is drawn from.

    Only the first spelling of each concept is proposed ("couch", never "sofa"), so a
    concept with many spellings is not drawn more often than the others.
    """
    pools: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for cls, entries in NOUN_CLASSES.items():
        if cls not in REPLACEABLE_NOUN_CLASSES:
            continue
        for entry in entries:
            first = entry.split("|")[0]
            concept = _noun_concept(first)
            singular, plural = _parse_noun_entry(first)
            if singular is not None:
                pools.setdefault((cls, "sg" if plural else "mass"), []).append((concept, singular))
            if plural is not None:
                pools.setdefault((cls, "pl"), []).append((concept, plural))
    return {key: tuple(value) for key, value in pools.items()}


NOUN_POOLS = _noun_pools()


def _verb_pools() -> dict[tuple[str, str], tuple[tuple[str, str], ...]]:
    pools: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for surface, info in VERBS.items():
        if info.concept in PARTICLE_VERBS:
            continue
        pool = pools.setdefault((info.cls, info.form), [])
        if all(concept != info.concept for concept, _ in pool):
            pool.append((info.concept, surface))
    return {key: tuple(sorted(value)) for key, value in pools.items()}


VERB_POOLS = _verb_pools()

ATTRIBUTE_POOLS: dict[str, tuple[tuple[str, str], ...]] = {
    group: tuple((entry.split("|")[0], entry.split("|")[0]) for entry in concepts)
    for group, concepts in ATTRIBUTE_GROUPS.items()
}


def pos_candidates(word: str) -> frozenset[str]:
    """All part-of-speech tags the lexicon allows for a lower-cased word or phrase.

    Tags: DET, NUM, PRON, AUX, CONJ, PREP, ADJ, ADV, NOUN, VERB. Context picks one of
    them (see ``negatives._resolve_tags``); an empty set means "unknown word".
    """
    if word in FIXED_PHRASES:
        return frozenset({FIXED_PHRASES[word]})
    tags = set()
    if word in DETERMINERS or word in QUANTIFIERS:
        tags.add("DET")
    if word in NUMBER_WORDS or word.isdigit():
        tags.add("NUM")
    if word in PRONOUNS:
        tags.add("PRON")
    if word in AUXILIARIES:
        tags.add("AUX")
    if word in CONJUNCTIONS:
        tags.add("CONJ")
    if word in PREPOSITIONS or word in RELATIONS:
        tags.add("PREP")
    if word in ADJECTIVES:
        tags.add("ADJ")
    if word in ADVERBS or word in PARTICLES:
        tags.add("ADV")
    if word in NOUNS:
        tags.add("NOUN")
    if word in VERBS:
        tags.add("VERB")
    return frozenset(tags)

